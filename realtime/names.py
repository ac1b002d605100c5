"""The names the command line offers for the runtime's choices, kept free of torch so that
`stylecast --help` and `stylecast video --help` start at once."""

BACKENDS = ("auto", "torch", "compiled", "aot", "onnxruntime", "tensorrt")
UPSAMPLERS = ("detail", "bicubic")  # see processing.StyleOptions
TRANSFORMS = ("adain", "wct")  # arbitrary-style feature transforms (models.adain)
