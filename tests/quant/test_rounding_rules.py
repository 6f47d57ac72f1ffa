"""onnxruntime's quantized arithmetic, op by op, against tinyc bit for bit.

Random data rarely lands on a rounding tie, so the inputs here are built to:
values at and next to half steps for QuantizeLinear, every pair of 8-bit
values for the adds, accumulators for which the candidate multiplier orders
((a*b)/y, a*(b/y), ...) round differently for the matrix product.
"""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import F32, assert_bit_exact, one_node, target_params

INT8 = (np.uint8, np.int8)


@pytest.mark.parametrize("target", target_params())
@pytest.mark.parametrize("dt", INT8)
def test_quantize_ties_and_specials(target, dt):
    rng = np.random.default_rng(0)
    s = F32(0.0371)
    x = ((rng.integers(-200, 200, 4000) + 0.5) * np.float64(s)).astype(F32)
    x = np.concatenate([x, np.nextafter(x, F32(np.inf)), np.nextafter(x, F32(-np.inf)),
                        np.array([np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30], F32)])
    m = one_node("QuantizeLinear", [("x", F32, [x.size]), ("s", F32, []), ("z", dt, [])],
                 [("y", dt, [x.size])], {"s": np.array(s), "z": np.array(5, dt)})
    assert_bit_exact(m, {"x": x}, target)


@pytest.mark.parametrize("dt", INT8)
def test_quantize_and_dequantize_per_axis(dt):
    rng = np.random.default_rng(1)
    s = rng.uniform(0.01, 0.1, 6).astype(F32)
    z = rng.integers(-5, 5, 6).astype(dt)
    shape = [2, 6, 7, 9]
    x = (rng.standard_normal(shape) * 3).astype(F32)
    q = one_node("QuantizeLinear", [("x", F32, shape), ("s", F32, [6]), ("z", dt, [6])],
                 [("y", dt, shape)], {"s": s, "z": z}, axis=1)
    assert_bit_exact(q, {"x": x}, "x86")
    xi = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max + 1, shape).astype(dt)
    d = one_node("DequantizeLinear", [("x", dt, shape), ("s", F32, [6]), ("z", dt, [6])],
                 [("y", F32, shape)], {"s": s, "z": z}, axis=1)
    assert_bit_exact(d, {"x": xi}, "x86")


def test_dequantize_int32():
    x = np.random.default_rng(2).integers(-2**30, 2**30, 5000).astype(np.int32)
    m = one_node("DequantizeLinear", [("x", np.int32, [5000]), ("s", F32, []),
                                      ("z", np.int32, [])], [("y", F32, [5000])],
                 {"s": np.array(F32(0.00123)), "z": np.array(0, np.int32)})
    assert_bit_exact(m, {"x": x}, "x86")


def _rows_with_sums(targets: np.ndarray, k: int) -> np.ndarray:
    """uint8 rows (zero point 128) whose dot product with [127]*(k-1) + [1] is
    each target: A @ B hits chosen accumulators exactly."""
    rows = np.full((len(targets), k), 128, np.int64)
    for i, t in enumerate(targets):
        q, r = divmod(int(t), 127)
        col = 0
        while q:
            step = max(-128, min(127, q))
            rows[i, col] += step
            q -= step
            col += 1
        rows[i, k - 1] += r
    return rows.astype(np.uint8)


def _discriminating_accumulators(a_s, b_s, y_s):
    """Accumulators where (a*b)/y and the other float32 orders round differently."""
    m = (a_s * b_s) / y_s
    others = [a_s * (b_s / y_s), a_s * b_s * (F32(1) / y_s), (a_s / y_s) * b_s]
    accs = np.arange(-int(120 / m), int(120 / m))
    want = np.rint(accs.astype(F32) * m)
    differs = np.zeros(accs.size, bool)
    for o in others:
        differs |= np.rint(accs.astype(F32) * F32(o)) != want
    return accs[differs][:64]


@pytest.mark.parametrize("target", target_params())
def test_qlinear_matmul_multiplier_is_a_times_b_over_y(target):
    rng = np.random.default_rng(3)
    found = 0
    while found < 3:
        a_s, b_s, y_s = (F32(v) for v in (rng.uniform(0.001, 0.05), rng.uniform(0.001, 0.05),
                                          rng.uniform(0.01, 0.5)))
        accs = _discriminating_accumulators(a_s, b_s, y_s)
        if accs.size == 0:
            continue
        found += 1
        k = int(np.abs(accs).max()) // (127 * 127) + 3
        a = _rows_with_sums(accs, k)
        b = np.full((k, 1), 127, np.int8)
        b[-1] = 1
        consts = {"a_s": np.array(a_s), "a_z": np.array(128, np.uint8), "b": b,
                  "b_s": np.array(b_s), "b_z": np.array(0, np.int8), "y_s": np.array(y_s),
                  "y_z": np.array(128, np.uint8)}
        m = one_node("QLinearMatMul", [("a", np.uint8, list(a.shape)), ("a_s", F32, []),
                                       ("a_z", np.uint8, []), ("b", np.int8, [k, 1]),
                                       ("b_s", F32, []), ("b_z", np.int8, []),
                                       ("y_s", F32, []), ("y_z", np.uint8, [])],
                     [("y", np.uint8, [len(a), 1])], consts)
        assert_bit_exact(m, {"a": a}, target)


@pytest.mark.parametrize("target", target_params())
@pytest.mark.parametrize("dt", INT8)
@pytest.mark.parametrize("per_column", [False, True])
def test_qlinear_matmul_and_matmul_integer(target, dt, per_column):
    rng = np.random.default_rng(4)
    m_, k, n = 33, 300, 47
    info = np.iinfo(dt)
    a = rng.integers(info.min, info.max + 1, (m_, k)).astype(dt)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    b_s = (rng.uniform(0.001, 0.05, n) if per_column else np.array(0.01)).astype(F32)
    consts = {"a_s": np.array(F32(0.02)), "a_z": np.array(7, dt), "b": b, "b_s": b_s,
              "b_z": np.zeros(b_s.shape, np.int8), "y_s": np.array(F32(0.9)),
              "y_z": np.array(-3 if dt == np.int8 else 120, dt)}
    sq = list(b_s.shape)
    m = one_node("QLinearMatMul", [("a", dt, [m_, k]), ("a_s", F32, []), ("a_z", dt, []),
                                   ("b", np.int8, [k, n]), ("b_s", F32, sq), ("b_z", np.int8, sq),
                                   ("y_s", F32, []), ("y_z", dt, [])], [("y", dt, [m_, n])],
                 consts)
    assert_bit_exact(m, {"a": a}, target)
    mi = one_node("MatMulInteger", [("a", dt, [m_, k]), ("b", np.int8, [k, n]),
                                    ("a_z", dt, []), ("b_z", np.int8, [])],
                  [("y", np.int32, [m_, n])],
                  {"b": b, "a_z": np.array(7, dt), "b_z": np.array(3, np.int8)})
    assert_bit_exact(mi, {"a": a}, target)


CONVS = [  # channels in/out, image, kernel, stride, group, padding
    (16, 24, 12, 3, 1, 1, 1), (16, 16, 12, 3, 2, 16, 1), (16, 32, 9, 1, 1, 1, 0),
    (16, 32, 9, 1, 2, 1, 0), (8, 12, 10, 3, 1, 2, 1), (8, 16, 13, 5, 1, 8, 2),
]


@pytest.mark.parametrize("target", target_params())
@pytest.mark.parametrize("dt", INT8)
@pytest.mark.parametrize("shape", CONVS, ids=lambda c: "c{}o{}h{}k{}s{}g{}p{}".format(*c))
def test_qlinear_conv(target, dt, shape):
    c, co, h, k, stride, group, pad = shape
    rng = np.random.default_rng(5)
    info = np.iinfo(dt)
    x = rng.integers(info.min, info.max + 1, (2, c, h, h)).astype(dt)
    w = rng.integers(-127, 128, (co, c // group, k, k)).astype(np.int8)
    w_s = rng.uniform(0.001, 0.02, co).astype(F32)  # per output channel
    consts = {"x_s": np.array(F32(0.02)), "x_z": np.array(5, dt), "w": w, "w_s": w_s,
              "w_z": np.zeros(co, np.int8), "y_s": np.array(F32(0.3)), "y_z": np.array(3, dt),
              "b": rng.integers(-5000, 5000, co).astype(np.int32)}
    ho = (h + 2 * pad - k) // stride + 1
    m = one_node("QLinearConv", [("x", dt, list(x.shape)), ("x_s", F32, []), ("x_z", dt, []),
                                 ("w", np.int8, list(w.shape)), ("w_s", F32, [co]),
                                 ("w_z", np.int8, [co]), ("y_s", F32, []), ("y_z", dt, []),
                                 ("b", np.int32, [co])], [("y", dt, [2, co, ho, ho])], consts,
                 kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4, group=group)
    assert_bit_exact(m, {"x": x}, target)


@pytest.mark.parametrize("dt", INT8)
def test_conv_integer(dt):
    rng = np.random.default_rng(6)
    x = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max + 1, (1, 8, 10, 10)).astype(dt)
    w = rng.integers(-128, 128, (8, 1, 3, 3)).astype(np.int8)
    for group, wt in ((8, w), (1, rng.integers(-128, 128, (6, 8, 3, 3)).astype(np.int8))):
        co = wt.shape[0]
        m = one_node("ConvInteger", [("x", dt, [1, 8, 10, 10]), ("w", np.int8, list(wt.shape)),
                                     ("x_z", dt, []), ("w_z", np.int8, [])],
                     [("y", np.int32, [1, co, 10, 10])],
                     {"w": wt, "x_z": np.array(5, dt), "w_z": np.array(2, np.int8)},
                     kernel_shape=[3, 3], pads=[1] * 4, group=group)
        assert_bit_exact(m, {"x": x}, "x86")


def _qlinear_add(dt, a_shape, b_shape, rng):
    info = np.iinfo(dt)
    zps = (-7, 9, 3) if dt == np.int8 else (120, 131, 128)
    consts = {"sa": np.array(F32(rng.uniform(0.01, 0.1))), "za": np.array(zps[0], dt),
              "sb": np.array(F32(rng.uniform(0.01, 0.1))), "zb": np.array(zps[1], dt),
              "sc": np.array(F32(rng.uniform(0.01, 0.1))), "zc": np.array(zps[2], dt)}
    out = list(np.broadcast_shapes(a_shape, b_shape))
    inputs = [("a", dt, list(a_shape)), ("sa", F32, []), ("za", dt, []), ("b", dt, list(b_shape)),
              ("sb", F32, []), ("zb", dt, []), ("sc", F32, []), ("zc", dt, [])]
    model = one_node("QLinearAdd", inputs, [("c", dt, out)], consts, domain="com.microsoft")
    return model, info


@pytest.mark.parametrize("target", target_params())
@pytest.mark.parametrize("dt", INT8)
def test_qlinear_add_every_pair(target, dt):
    """MLAS's fused multiply-adds, on all 65536 input pairs, twice."""
    rng = np.random.default_rng(7)
    for _ in range(2):
        model, info = _qlinear_add(dt, (65536,), (65536,), rng)
        values = np.arange(info.min, info.max + 1)
        a, b = (v.reshape(-1).astype(dt) for v in np.meshgrid(values, values))
        assert_bit_exact(model, {"a": a, "b": b}, target)


@pytest.mark.parametrize("shapes", [((64, 256), (256,)), ((64, 256), (1,)), ((1,), (64, 256)),
                                    ((32, 8, 8), (32, 1, 1))], ids=str)
def test_qlinear_add_broadcasting(shapes):
    """Scalar operands take MLAS's other formula (folded into the fixed part)."""
    rng = np.random.default_rng(8)
    for dt in INT8:
        model, info = _qlinear_add(dt, *shapes, rng)
        feeds = {k: rng.integers(info.min, info.max + 1, s).astype(dt)
                 for k, s in zip("ab", shapes, strict=True)}
        assert_bit_exact(model, feeds, "x86")


@pytest.mark.parametrize("dt", INT8)
@pytest.mark.parametrize("op", ["QLinearGlobalAveragePool", "QLinearAveragePool"])
def test_qlinear_global_average(dt, op):
    rng = np.random.default_rng(9)
    info = np.iinfo(dt)
    x = rng.integers(info.min, info.max + 1, (2, 300, 7, 7)).astype(dt)
    consts = {"xs": np.array(F32(0.05)), "zx": np.array(3, dt), "ys": np.array(F32(0.02)),
              "zy": np.array(-2 if dt == np.int8 else 100, dt)}
    attrs = {"channels_last": 0} if op == "QLinearGlobalAveragePool" else {"kernel_shape": [7, 7]}
    m = one_node(op, [("x", dt, [2, 300, 7, 7]), ("xs", F32, []), ("zx", dt, []),
                      ("ys", F32, []), ("zy", dt, [])], [("y", dt, [2, 300, 1, 1])], consts,
                 domain="com.microsoft", **attrs)
    assert_bit_exact(m, {"x": x}, "x86")


@pytest.mark.parametrize("per_channel", [False, True])
def test_qgemm(per_channel):
    rng = np.random.default_rng(10)
    m_, k, n = 16, 200, 40
    a = rng.integers(-128, 128, (m_, k)).astype(np.int8)
    b = rng.integers(-127, 128, (n, k)).astype(np.int8)
    b_s = (rng.uniform(0.001, 0.02, n) if per_channel else np.array(0.01)).astype(F32)
    sq = list(b_s.shape)
    consts = {"a_s": np.array(F32(0.03)), "a_z": np.array(-4, np.int8), "b": b, "b_s": b_s,
              "b_z": np.zeros(sq, np.int8), "c": rng.integers(-20000, 20000, n).astype(np.int32),
              "y_s": np.array(F32(0.8)), "y_z": np.array(2, np.int8)}
    model = one_node("QGemm", [("a", np.int8, [m_, k]), ("a_s", F32, []), ("a_z", np.int8, []),
                               ("b", np.int8, [n, k]), ("b_s", F32, sq), ("b_z", np.int8, sq),
                               ("c", np.int32, [n]), ("y_s", F32, []), ("y_z", np.int8, [])],
                     [("y", np.int8, [m_, n])], consts, domain="com.microsoft", transB=1,
                     alpha=1.0)
    assert_bit_exact(model, {"a": a}, "x86")


def test_dynamic_quantize_linear():
    rng = np.random.default_rng(11)
    for scale in (0.1, 1.0, 30.0):
        x = (rng.standard_normal((8, 300)) * scale).astype(F32)
        for data in (x, np.abs(x), -np.abs(x), np.zeros_like(x)):
            m = one_node("DynamicQuantizeLinear", [("x", F32, [8, 300])],
                         [("y", np.uint8, [8, 300]), ("s", F32, []), ("z", np.uint8, [])], {})
            assert_bit_exact(m, {"x": data}, "x86")


@pytest.mark.parametrize("dt", INT8)
def test_qlinear_concat(dt):
    """Inputs with the output's parameters are copied, the others requantized."""
    rng = np.random.default_rng(12)
    info = np.iinfo(dt)
    inputs = [("ys", F32, []), ("yz", dt, [])]
    consts = {"ys": np.array(F32(0.05)), "yz": np.array(3, dt)}
    feeds = {}
    for i, (channels, scale, zp) in enumerate(((3, 0.031, 7), (6, 0.05, 3), (1, 0.11, 1))):
        shape = [2, channels, 4, 5]
        inputs += [(f"x{i}", dt, shape), (f"s{i}", F32, []), (f"z{i}", dt, [])]
        consts.update({f"s{i}": np.array(F32(scale)), f"z{i}": np.array(zp, dt)})
        feeds[f"x{i}"] = rng.integers(info.min, info.max + 1, shape).astype(dt)
    m = one_node("QLinearConcat", inputs, [("y", dt, [2, 10, 4, 5])], consts,
                 domain="com.microsoft", axis=1)
    assert_bit_exact(m, feeds, "x86")
