"""Benchmarks behind ``revsnn bench …`` and ``revsnn drift``: each module is one command.

- :mod:`revsnn.bench.nodes`: single spiking nodes, every memory mode side by side.
- :mod:`revsnn.bench.drift`: reconstruction drift of the reversible node vs T and dtype.
- :mod:`revsnn.bench.report`: shared formatting (bytes, ms, ratios, tables) and CSV/JSON output.

Command modules follow the contract in NOTE [command contract] of :mod:`revsnn.cli`. Nothing is
imported here, so a broken benchmark module cannot break the others.
"""

__all__: list = []
