"""Offline analysis of est runs: reads the traces (trace.h5) that `est train` writes and the manifests that
`est jobs scaling` writes, and draws the plots and tables of a report. Only h5py, numpy and matplotlib."""
