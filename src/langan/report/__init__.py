"""Reports of finished runs: training curves (`langan report`, curves.py) and the comparison page of several
runs or seed groups (`langan compare`, compare.py)."""
