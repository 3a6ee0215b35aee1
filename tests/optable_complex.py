"""Op-table cases of the complex ops (framework/ops/complex.py). The table's gradcheck and
torch parity work on real tensors, so complex values are built from real parts and taken
apart again (view_as_real, real, imag, angle); tests/test_complex.py checks complex inputs,
complex64 and PyTorch's complex gradient convention."""
from __future__ import annotations

from optable import C, In

_AB = [(2, 3), (2, 3)]

CASES = [
    C("real", lambda m, x: m.real(x) * 1.0, [(2, 3)], note="real-input"),
    C("real", lambda m, a, b: m.real(m.complex(a, b) * m.complex(b, a)), _AB),
    C("imag", lambda m, a, b: m.imag(m.complex(a, b) ** 2), _AB),
    C("imag", lambda m, a, b: m.complex(a, b).imag * 1.0, _AB, note="property"),
    C("complex", lambda m, a, b: m.view_as_real(m.complex(a, b)), _AB),
    C("complex", lambda m, a, b: m.view_as_real(m.complex(a, b)), [(2, 3), (3,)],
      note="broadcast"),
    C("polar", lambda m, r, t: m.view_as_real(m.polar(r, t)), [In((2, 3), 0.5, 2.0), (2, 3)]),
    C("view_as_complex", lambda m, x: m.view_as_real(m.view_as_complex(x) ** 2), [(3, 2)]),
    C("view_as_real", lambda m, x: m.view_as_real(m.view_as_complex(x).exp()), [(2, 3, 2)]),
    C("conj", lambda m, a, b: m.view_as_real(m.conj(m.complex(a, b)) * m.complex(b, a)), _AB),
    C("conj", lambda m, x: m.conj(x) * 1.0, [(2, 3)], note="real-input"),
    C("conj_physical", lambda m, a, b: m.view_as_real(m.conj_physical(m.complex(a, b))), _AB),
    # (exp keeps torch's gradient free of a lazy negation bit, which numpy() refuses)
    C("resolve_conj",
      lambda m, a, b: m.view_as_real(m.resolve_conj(m.conj(m.complex(a, b).exp()))), _AB),
    C("angle", lambda m, a, b: m.angle(m.complex(a, b)), _AB),
    C("angle", lambda m, x: m.angle(x), [(2, 3)], note="real-input"),
]

NONDIFF_CASES = [
    C("is_conj", lambda m, a, b: m.is_conj(m.complex(a, b)), _AB, grad=()),
]
