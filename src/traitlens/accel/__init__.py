"""The speed wing. One rule: nothing here changes a result unless the caller asks for it.

Bit-identical by construction: lower-layer reuse (``lower_layers``), the greedy decoding loop
(``decoding.loop``), the compiled step (``decoding.compiled``), batching helpers. Opt-in and
not bit-identical (agreement measured in ``benchmarks/``): reduced precision and its row
products (``precision``, ``gemv``), speculative decoding, the scorer's fast path (``scoring``),
and the suites' fast decoding (``suites``). Everything here works on plain torch modules and
token ids; it knows nothing of items, vectors or suites.
"""
