import pytest

from vsdpo.model.tiny import save_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer Llama with the project tokenizer, as a transformers directory."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
