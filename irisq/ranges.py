"""What real Iris flowers measure, for input widgets and presets (Fisher's 150 flowers)."""

from typing import Final

# (min, max) observed in the dataset, per feature, in cm.
OBSERVED_RANGES: Final = {
    "sepal_length": (4.3, 7.9),
    "sepal_width": (2.0, 4.4),
    "petal_length": (1.0, 6.9),
    "petal_width": (0.1, 2.5),
}

# The per-species mean flower of the dataset, rounded to a millimetre.
TYPICAL_FLOWERS: Final = {
    "setosa": {"sepal_length": 5.0, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2},
    "versicolor": {
        "sepal_length": 5.9,
        "sepal_width": 2.8,
        "petal_length": 4.3,
        "petal_width": 1.3,
    },
    "virginica": {"sepal_length": 6.6, "sepal_width": 3.0, "petal_length": 5.6, "petal_width": 2.0},
}
