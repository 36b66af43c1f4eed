"""The command line: `est-analysis table`, `est-analysis report` and `est-analysis compare`. Bad input is one line
on stderr, `est-analysis: error: FILE: KEY: message`, and exit status 2."""
import argparse
import sys

from .compare import not_done_warning, summary, write_compare
from .errors import AnalysisError
from .report import write_report
from .summary_table import table


def parser():
    p = argparse.ArgumentParser(prog="est-analysis", description="Offline analysis of est runs.")
    commands = p.add_subparsers(dest="command", required=True)
    t = commands.add_parser("table", help="print the summaries of runs side by side")
    t.add_argument("runs", nargs="+", metavar="RUN_DIR")
    t.add_argument("--baseline", metavar="RUN_DIR", help="compare FLOPs and training time with this run")
    r = commands.add_parser("report", help="write plots and report.md from traces and scaling manifests")
    r.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a trace.h5, a run directory holding one, or a scaling study's manifest.json")
    r.add_argument("--baseline", metavar="RUN_OR_TRACE", help="the full-model run to compare with")
    r.add_argument("--out", default="report", metavar="DIR", help="the report folder (default: ./report)")
    r.add_argument("--force", action="store_true", help="replace DIR if it exists")
    c = commands.add_parser("compare", help="compare a quality study's variants with its baseline, over seeds")
    c.add_argument("manifest", metavar="MANIFEST", help="the study's manifest.json (written by `est study`)")
    c.add_argument("--out", metavar="DIR", help="the output folder (default: compare/ beside MANIFEST)")
    c.add_argument("--force", action="store_true", help="replace DIR if it exists")
    c.add_argument("--baseline", metavar="VARIANT", help="compare with this variant instead of the study's baseline")
    return p


def compare(args):
    comparison, out = write_compare(args.manifest, args.out, args.force, args.baseline)
    warning = not_done_warning(comparison)
    if warning:
        print(f"est-analysis: warning: {warning}", file=sys.stderr)
    print(summary(comparison))
    print(f"est-analysis: wrote {out}")


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.command == "table":
            print(table(args.runs, args.baseline))
        elif args.command == "report":
            print(f"est-analysis: wrote {write_report(args.inputs, args.out, args.baseline, args.force)}")
        else:
            compare(args)
    except AnalysisError as e:
        print(f"est-analysis: error: {e}", file=sys.stderr)
        return 2
    return 0
