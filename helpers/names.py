"""The names of the BERT-QA network's layers and tensors: one contract for the builder, the
calibrators (TensorRT's cache and the project's own scales files refer to tensors by name) and
the layer profiler (which traces fused engine layers back to these names).

A layer and its first output share a name.
"""

INPUT_NAMES = ("input_ids", "segment_ids", "input_mask")  # padded: (batch, seq) int32 each
PACKED_INPUT_NAMES = ("input_ids", "segment_ids", "cu_seqlens", "max_seqlen")  # --varseqlen
OUTPUT_NAME = "cls_squad_logits"

EMBEDDINGS = "embeddings"  # EmbLayerNorm's output: the first layer's input
QA_OUTPUTS = "qa_outputs"  # the QA head's projection

# The four projections of every encoder layer, in the order the layer runs them.
PROJECTIONS = ("qkv", "attention_output", "intermediate", "output")

# The parts of encoder layer i, each a named tensor: qkv -> qkv_to_context (attention) ->
# attention_output -> attention_layer_norm -> intermediate -> gelu -> output -> output_layer_norm.
LAYER_PARTS = ("qkv", "qkv_to_context", "attention_output", "attention_layer_norm",
               "intermediate", "gelu", "output", "output_layer_norm")


def layer(index, part):
    """The name of `part` (one of LAYER_PARTS, or a suffix of it) of encoder layer `index`."""
    return f"layer.{index}_{part}"


def layer_input(index):
    """The tensor encoder layer `index` reads: the embeddings, or the previous layer's output."""
    return EMBEDDINGS if index == 0 else layer(index - 1, "output_layer_norm")


def projection_input(index, projection):
    """The tensor that projection `projection` (one of PROJECTIONS) of layer `index` multiplies:
    what an int8 projection quantizes."""
    return {"qkv": layer_input(index),
            "attention_output": layer(index, "qkv_to_context"),
            "intermediate": layer(index, "attention_layer_norm"),
            "output": layer(index, "gelu")}[projection]


def projection_kind(name):
    """"layer.3_qkv" -> "qkv"; None for a name that is no encoder layer's projection."""
    if not name.startswith("layer."):
        return None
    kind = name.split("_", 1)[1] if "_" in name else ""
    return kind if kind in PROJECTIONS else None
