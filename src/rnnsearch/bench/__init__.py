"""Benchmarks, one command each:

    rnnsearch bench              runner.py: rnnsearch against the PyTorch reference's search
    rnnsearch bench --compare    peers.py: rnnsearch against ONNX Runtime and PyTorch eager

sources.py holds the random sentences both feed their engines. Importing this package needs
neither torch nor onnxruntime: only the peer harness imports them.
"""
