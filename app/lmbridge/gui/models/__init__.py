"""Models: LM Studio's downloaded and loaded models (`manager`, table
`model`, page `view`), the load dialog, and downloads (`downloads`: their
manager; `downloads_view`: the box on the page)."""
