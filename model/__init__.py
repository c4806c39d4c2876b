"""What the API and the streaming job share about models: gait features, model families, evaluation,
labels and the registry. Plain Python (numpy, pandas, scikit-learn): no Litestar, no Spark, and
no import of ``api`` or ``streaming``; errors are :mod:`model.errors`, mapped to HTTP by ``api``."""
