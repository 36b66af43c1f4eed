"""The mean of a few per-seed values and its 95% Student t interval. Studies run a handful of seeds, so the
normal approximation (1.96) would claim far too much; without scipy the t quantiles are tabulated."""
import math

# Student t 0.975 quantiles for 1..30 degrees of freedom; beyond, the normal one.
T_975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
NORMAL_975 = 1.96


def t_975(df):
    return T_975[df - 1] if df <= len(T_975) else NORMAL_975


def mean_interval(values):
    """(mean, low, high); low and high are None for one value, which has no spread to go by."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_975(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half
