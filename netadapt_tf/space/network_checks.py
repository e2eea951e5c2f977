"""The checks of a whole NetworkSpec, which follow the channels and the resolution through
its nodes: names, depthwise filters, zero widths that would disconnect the network, residual
shapes, skips, the classifier and the dense head. Each node's own fields are checked by its
record (spec_nodes.py); `validate_network` runs when a NetworkSpec is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netadapt_tf.space.spec_nodes import (
    BlockSpec,
    LayerSpec,
    PoolSpec,
    SkipSpec,
    UpsampleSpec,
    encode_limit,
)

if TYPE_CHECKING:
    from netadapt_tf.space.spec import NetworkSpec


def _out_size(size: int, strides: int) -> int:
    return -(-size // strides)  # 'same' padding


def validate_network(spec: NetworkSpec) -> None:
    """Checks that follow the channels and the resolution through the network: names,
    depthwise filters, zero widths that would disconnect the network, residual shapes,
    skips, the classifier and the dense head."""
    if spec.input_size < 1 or spec.input_channels < 1:
        raise ValueError(
            f"{spec.name}: input_size {spec.input_size} and input_channels "
            f"{spec.input_channels} must be positive"
        )
    seen = set()
    channels, size = spec.input_channels, spec.input_size
    pooled = None
    outputs = {}  # skip sources: a top-level conv/pointwise layer -> (channels, size)
    target = None  # the layer whose output the current tensor is (upsampled or not)
    for index, node in enumerate(spec.nodes):
        _check_node_type(index, node)
        if isinstance(node, PoolSpec):
            if pooled:
                raise ValueError(f"{node.name}: the network pools twice")
            pooled, size, target = node, 1, None
        elif isinstance(node, UpsampleSpec | SkipSpec):
            _check_upsample_or_skip(node, seen, pooled)
            if isinstance(node, UpsampleSpec):
                size *= 2
            else:
                _check_skip(spec, node, target, outputs, channels, size)
                target = None
        else:
            channels, size = _walk_layers(node, seen, channels, size, pooled)
            target = None
            if isinstance(node, LayerSpec) and node.kind in SKIP_KINDS and not pooled:
                outputs[node.name] = (channels, size)
                target = node.name
    last = spec.nodes[-1] if spec.nodes else None
    if spec.num_classes is not None:
        _check_classifier(spec, last)
    if spec.dense_channels is not None:
        _check_dense_head(spec, last, pooled, size)


def _check_node_type(index: int, node) -> None:
    if not isinstance(node, LayerSpec | BlockSpec | PoolSpec | UpsampleSpec | SkipSpec):
        raise TypeError(
            f"nodes[{index}]: {node!r} is not a LayerSpec, BlockSpec, PoolSpec, "
            "UpsampleSpec or SkipSpec"
        )


def _check_upsample_or_skip(node: UpsampleSpec | SkipSpec, seen: set, pooled) -> None:
    """An upsample or a skip: a name of its own (added to `seen`), before the global pool."""
    if node.name in seen:
        raise ValueError(f"{node.name}: duplicate name (layer, upsample and skip names)")
    seen.add(node.name)
    if pooled:
        raise ValueError(
            f"{node.name}: {node.to_json()['type']} after the global pool; the "
            "classification head allows only 'pointwise' and 'fc' layers"
        )


def _walk_layers(node: LayerSpec | BlockSpec, seen: set, channels: int, size: int, pooled):
    """Checks the layers of `node` (a layer or a block), adding their names to `seen`;
    returns the (channels, size) of the node's output at full width."""
    block_in = channels
    layers = node.layers if isinstance(node, BlockSpec) else (node,)
    for layer in layers:
        if layer.name in seen:
            raise ValueError(f"{layer.name}: duplicate layer name")
        seen.add(layer.name)
        _check_layer(node, layer, channels, pooled)
        if layer.kind not in ("se", "depthwise"):
            channels = int(max(min(channels, layer.bypass_limit), layer.filters))
        if layer.kind != "fc":
            size = _out_size(size, layer.strides)
    if isinstance(node, BlockSpec) and node.residual and node.projection.filters != block_in:
        raise ValueError(
            f"{node.name}.residual: the block's input has {block_in} channels but its "
            f"projection has {node.projection.filters} filters; a residual block must "
            "keep the width"
        )
    return channels, size


def _check_layer(node: LayerSpec | BlockSpec, layer: LayerSpec, channels: int, pooled) -> None:
    """One layer of `node` whose input has `channels` channels."""
    residual_projection = isinstance(node, BlockSpec) and node.residual and layer is node.projection
    if layer.kind == "depthwise" and layer.filters != channels:
        raise ValueError(
            f"{layer.name}.filters: {layer.filters}, but a depthwise layer has one "
            f"filter per input channel and its input has {channels} channels"
        )
    if (
        0 in layer.widths
        and layer.kind != "se"
        and layer.bypass_limit == 0
        and not residual_projection
    ):
        raise ValueError(
            f"{layer.name}.widths: width 0 is allowed but bypass_limit is 0, so removing "
            "every filter would disconnect the network; give it a bypass limit > 0"
        )
    if layer.kind == "fc" and not pooled:
        raise ValueError(f"{layer.name}: an fc layer must follow the global pool")
    if pooled and (layer.kind != "fc" and layer.kind != "pointwise"):
        raise ValueError(
            f"{layer.name}.kind: {layer.kind!r} after the global pool; allowed are "
            "'pointwise' and 'fc'"
        )


def _check_classifier(spec: NetworkSpec, last) -> None:
    if spec.dense_channels is not None:
        raise ValueError(
            f"{spec.name}: num_classes {spec.num_classes} and dense_channels "
            f"{spec.dense_channels} are both set; a network is a classifier or a "
            "dense predictor"
        )
    if not (isinstance(last, LayerSpec) and last.kind == "fc"):
        raise ValueError(f"{spec.name}: num_classes is set but the last node is not an fc")
    if last.widths != (spec.num_classes,) or last.filters != spec.num_classes:
        raise ValueError(
            f"{last.name}.widths: {last.widths}; the classifier must keep all "
            f"{spec.num_classes} classes"
        )


SKIP_KINDS = ("conv", "pointwise")


def _check_skip(spec, skip: SkipSpec, target, outputs, channels: int, size: int) -> None:
    """A skip joins two top-level conv/pointwise layers of one resolution and one full
    width whose widths are tied and never bypass (so the summed widths stay equal)."""
    if skip.target != target:
        here = f"here {target!r}" if target else "here none"
        raise ValueError(
            f"{skip.name}.target: {skip.target!r} is not allowed; allowed: the conv or "
            f"pointwise layer right before the skip (only upsample nodes may lie between), {here}"
        )
    if skip.source not in outputs or skip.source == skip.target:
        raise ValueError(
            f"{skip.name}.source: {skip.source!r} is not allowed; allowed: a conv or pointwise "
            "layer of its own (not inside a block) before the skip's target"
        )
    source_channels, source_size = outputs[skip.source]
    if source_size != size:
        raise ValueError(
            f"{skip.name}: adds {skip.source!r} ({source_size}x{source_size}) to "
            f"{skip.target!r} ({size}x{size} at the skip); a skip joins tensors of one "
            "resolution"
        )
    if source_channels != channels:
        raise ValueError(
            f"{skip.name}: adds {skip.source!r} ({source_channels} channels) to "
            f"{skip.target!r} ({channels} channels); a skip joins tensors of one width"
        )
    source, joined = spec.layer(skip.source), spec.layer(skip.target)
    if source.widths != joined.widths:
        raise ValueError(
            f"{skip.name}: widths of {source.name!r} {list(source.widths)} and of "
            f"{joined.name!r} {list(joined.widths)} differ; a skip ties the widths of the "
            "layers it joins, so they must offer the same widths"
        )
    for layer in (source, joined):
        if layer.bypass_limit != 0 and layer.bypass_limit > layer.widths[0]:
            raise ValueError(
                f"{layer.name}.bypass_limit: {encode_limit(layer.bypass_limit)} is not allowed "
                f"for a layer joined by skip {skip.name!r}; allowed: 0 or at most its smallest "
                f"width {layer.widths[0]} (it must output exactly its width in every sub-network)"
            )


def _check_dense_head(spec: NetworkSpec, last, pooled, size: int) -> None:
    d = spec.dense_channels
    if pooled:
        raise ValueError(
            f"{pooled.name}: a global pool in a dense-prediction network (dense_channels {d}); "
            "its output is a map at the input resolution"
        )
    if not (isinstance(last, LayerSpec) and last.kind in SKIP_KINDS):
        name = getattr(last, "name", None)
        raise ValueError(
            f"{spec.name}: the last node {name!r} is not a conv or pointwise layer; a dense "
            f"head ends with one that outputs the {d}-channel map"
        )
    if last.widths != (d,) or last.filters != d or last.bypass_limit != 0:
        raise ValueError(
            f"{last.name}: filters {last.filters}, widths {list(last.widths)}, bypass_limit "
            f"{encode_limit(last.bypass_limit)}; the dense head must output exactly "
            f"dense_channels={d} channels: filters {d}, widths [{d}], bypass_limit 0"
        )
    if size != spec.input_size:
        raise ValueError(
            f"{spec.name}: the dense output is {size}x{size} but the input is "
            f"{spec.input_size}x{spec.input_size}; a dense head outputs a map at the input "
            "resolution"
        )
