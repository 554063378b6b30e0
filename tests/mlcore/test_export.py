import numpy as np
import pytest

from mlcore.export import export_model
from mlcore.serving import interpreter_class


@pytest.fixture(scope="module")
def probe(tiny_tools):
    return tiny_tools.surface("horizontal_stripes", np.random.default_rng(31))


def test_tflite_export_loads_and_matches_the_classifier(tiny_trained, tiny_classifier, probe, tmp_path):
    target = export_model(model_dir=tiny_trained[0].model_dir, out_dir=tmp_path / "edge", format="tflite")
    interpreter = interpreter_class()(model_path=str(target))
    interpreter.allocate_tensors()
    (image_input,) = interpreter.get_input_details()
    assert list(image_input["shape_signature"][1:]) == [32, 32, 1]
    interpreter.set_tensor(image_input["index"], probe[None, ..., None].astype(np.float32))
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    probabilities = next(o for o in outputs if o.shape[-1] == len(tiny_classifier.classes))
    np.testing.assert_allclose(probabilities, tiny_classifier.predict_arrays([probe])[0], rtol=1e-3, atol=1e-5)


def test_unknown_export_format_is_refused(tiny_trained, tmp_path):
    with pytest.raises(ValueError, match="format"):
        export_model(model_dir=tiny_trained[0].model_dir, out_dir=tmp_path, format="coreml")
