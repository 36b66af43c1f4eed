import pytest
from est_analysis.errors import AnalysisError
from est_analysis.model_shape import model_shape


def test_block_and_flow_style_give_the_same_shape():
    block = "train:\n  n_head: 99\nmodel:\n  arch: gpt2\n  n_head: 4  # heads\n  n_embd: 256\ndata:\n  n_embd: 7\n"
    flow = "model: {arch: gpt2, n_head: 4, n_embd: 256}\ndata: {n_embd: 7}\n"
    assert model_shape(block, "t.h5") == model_shape(flow, "t.h5") == {"n_head": 4, "n_embd": 256}


def test_keys_left_out_take_est_defaults():
    assert model_shape("model:\n  n_layer: 2\n", "t.h5") == {"n_head": 12, "n_embd": 768}
    assert model_shape("train:\n  steps: 3\n", "t.h5") == {"n_head": 12, "n_embd": 768}


def test_a_value_that_is_not_a_count_names_the_key():
    with pytest.raises(AnalysisError, match=r"^t.h5: /@config: model.n_embd: not an integer"):
        model_shape("model:\n  n_embd: wide\n", "t.h5")
