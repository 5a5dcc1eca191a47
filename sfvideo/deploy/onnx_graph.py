"""Rewrites of an exported ONNX graph into forms onnxruntime runs faster, each the same function.

``fuse_attention_heads``: torch's exporter writes ``F.scaled_dot_product_attention`` of heads
split out of one ``qkv`` projection as

    qkv (B, N, 3*D) -Reshape-> (B, N, 3, h, d) -Transpose-> (3, B, h, N, d) -Slice/Squeeze-> q, k, v
    Attention(q, k, v) (B, h, N, d) -Transpose-> (B, N, h, d) -Reshape-> (B, N, D)

ONNX's Attention (opset 23) also takes the heads packed in the last axis (``q_num_heads``), so the
same computation is ``Split(qkv) -> Attention(q, k, v, q_num_heads=h) -> (B, N, D)``, without the
five layout copies per attention (onnxruntime lays the heads out inside its kernel).
"""

from __future__ import annotations

from typing import Any


def _const(graph_consts: dict[str, Any], name: str) -> list[int] | None:
    value = graph_consts.get(name)
    return None if value is None else [int(v) for v in value.reshape(-1)]


def _perm(node) -> list[int] | None:
    from onnx import helper

    return next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"), None)


def _head_split(att, prod: dict, consts: dict) -> tuple[Any, list] | None:
    """The Reshape that splits heads off ``att``'s q, k, v and the nodes between, or None."""
    squeezes = [prod.get(i) for i in att.input]
    if len(att.input) != 3 or any(s is None or s.op_type != "Squeeze" or _const(consts, s.input[1]) != [0]
                                  for s in squeezes):
        return None
    slices = [prod.get(s.input[0]) for s in squeezes]
    for k, sl in enumerate(slices):  # q, k, v = entries 0, 1, 2 along axis 0
        if sl is None or sl.op_type != "Slice" or [_const(consts, i) for i in sl.input[1:4]] != [[k], [k + 1], [0]] \
                or (len(sl.input) > 4 and _const(consts, sl.input[4]) != [1]):
            return None
    transpose = prod.get(slices[0].input[0])
    if transpose is None or any(sl.input[0] != transpose.output[0] for sl in slices) \
            or transpose.op_type != "Transpose" or _perm(transpose) != [2, 0, 3, 1, 4]:
        return None
    reshape = prod.get(transpose.input[0])
    shape = _const(consts, reshape.input[1]) if reshape is not None and reshape.op_type == "Reshape" else None
    if shape is None or len(shape) != 5 or shape[2] != 3:
        return None
    return reshape, [*squeezes, *slices, transpose]


def _head_merge(att, users: dict, consts: dict) -> tuple[Any, list] | None:
    """The Reshape that merges ``att``'s heads back into (B, N, D) and the Transpose before, or None."""
    after = users.get(att.output[0], [])
    if len(att.output) != 1 or len(after) != 1 or after[0].op_type != "Transpose" or _perm(after[0]) != [0, 2, 1, 3]:
        return None
    merge = users.get(after[0].output[0], [])
    if len(merge) != 1 or merge[0].op_type != "Reshape":
        return None
    shape = _const(consts, merge[0].input[1])
    return (merge[0], [after[0]]) if shape is not None and len(shape) == 3 else None


def fuse_attention_heads(model) -> int:
    """Rewrite, in place, each head-split ``Attention`` of ``model`` (an ``onnx.ModelProto``) into the
    packed-heads form (see the module docstring). Returns how many were rewritten; any other
    Attention is left as it is."""
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    prod = {o: n for n in graph.node for o in n.output}
    users: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}
    replace, drop = {}, set()
    for att in (n for n in graph.node if n.op_type == "Attention" and n.domain in ("", "ai.onnx")):
        split, merge = _head_split(att, prod, consts), _head_merge(att, users, consts)
        if split is None or merge is None:
            continue
        (reshape, between), (out_reshape, after) = split, merge
        inner = [*between, att, *after]  # what the rewrite removes must feed nothing else
        group = {id(n) for n in (*inner, out_reshape)}
        if any(o in outputs or any(id(u) not in group for u in users.get(o, [])) for n in inner for o in n.output):
            continue
        heads = _const(consts, reshape.input[1])[3]
        qkv = [f"{att.name}/{x}_packed" for x in "qkv"]
        fused = helper.make_node("Attention", qkv, [out_reshape.output[0]], name=f"{att.name}/packed_heads",
                                 q_num_heads=heads, kv_num_heads=heads)
        fused.attribute.extend(a for a in att.attribute if a.name not in ("q_num_heads", "kv_num_heads"))
        replace[id(att)] = [helper.make_node("Split", [reshape.input[0]], qkv, name=f"{att.name}/split_packed",
                                             axis=-1, num_outputs=3), fused]
        drop |= group
        if all(id(u) in drop for u in users[reshape.output[0]]):
            drop.add(id(reshape))
    nodes = [new for n in graph.node for new in replace.get(id(n), [] if id(n) in drop else [n])]
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(graph)
    return len(replace)


def _drop_unused_initializers(graph) -> None:
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
