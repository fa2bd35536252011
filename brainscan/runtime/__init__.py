"""Running a model folder: LiteRT (runtime.lite) or Keras (runtime.keras_model) back-ends, calibrated
prediction (runtime.inference) and the unfamiliar-scan checks (runtime.familiarity). No TensorFlow on the
LiteRT path."""
