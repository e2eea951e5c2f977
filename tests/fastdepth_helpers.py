"""The paper's Table 10 FastDepth network (the discovered 87 ms one) as an arch of the
FastDepth super-network."""

from netadapt_tf.space.arch import full_arch

# Table 10 of the paper: (layer, width, kernel size) of the discovered 87 ms network
# (rows 30, 33, 36, 39 and 42 are the upsamplings; row 43 the 1-filter output).
TABLE_10 = [("stem", 24, 3), ("block1/depthwise", 20, 3), ("block1/pointwise", 48, 1)] + [
    (f"block{i}/{kind}", width, 3 if kind == "depthwise" else 1)
    for i, (dw, pw) in enumerate(
        [
            (48, 96),
            (96, 112),
            (112, 256),
            (256, 192),
            (192, 448),
            (448, 448),
            (448, 384),
            (384, 512),
            (512, 384),
            (384, 448),
            (448, 384),
            (384, 768),
        ],
        start=2,
    )
    for kind, width in (("depthwise", dw), ("pointwise", pw))
]
TABLE_10 += [
    (f"decode{i}/{kind}", width, kernel if kind == "depthwise" else 1)
    for i, (dw, pw, kernel) in enumerate(
        [(768, 384, 5), (320, 192, 5), (160, 112, 5), (112, 48, 3), (28, 24, 3)], start=1
    )
    for kind, width in (("depthwise", dw), ("pointwise", pw))
] + [("output", 1, 1)]


def table_10_arch(spec):
    return full_arch(spec).with_choices(
        {name: {"width": w, "kernel_size": k} for name, w, k in TABLE_10}
    )
