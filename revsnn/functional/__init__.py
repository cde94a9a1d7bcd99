"""Pure maths: step functions, their inverses and vector-Jacobian products, fixed-point rounding
and bit packing. No modules; every equation label (E…) is defined in one module here.

- :mod:`~revsnn.functional.quantize`: straight-through rounding, exact ranges per dtype.
- :mod:`~revsnn.functional.lif`: LIF / IF steps (E1.x).
- :mod:`~revsnn.functional.reversible`: the reversible node's step, inverse, VJP and loops over T
  (E2.x–E4.x).
- :mod:`~revsnn.functional.bn_inverse`: BatchNorm inverted from the node input (E2.B1–E2.B4).
- :mod:`~revsnn.functional.binary`: the binary LIF's integer step, inverse and VJP (E5.x, E6.x).
"""
