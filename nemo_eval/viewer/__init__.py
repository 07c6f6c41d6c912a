"""The results viewer (``nemo-eval view``): a read-only local web UI over output directories.

``catalog`` finds runs and their files, ``samples`` indexes one generation file for paging and
filtering, ``render`` turns a graded line into what the sample page shows, ``views`` assembles
each page's data (metrics, comparisons, trends, from the metrics package), ``app`` serves the pages,
and ``serve`` is the command. The viewer comes after metrics in the import order; nothing imports it.
"""
