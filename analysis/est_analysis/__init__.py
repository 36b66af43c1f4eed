"""Offline analysis of est runs: reads the traces (trace.h5) that `est train` writes and the manifests that
`est jobs scaling` and `est study` write, and draws the plots and tables of reports and comparisons. Only h5py,
numpy and matplotlib."""
