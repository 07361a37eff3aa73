"""Sessions: chained sessions and their settings (`manager`, table `model`,
page `view`)."""
