"""transferflow: transfer learning for text classification, framework-free core.

This package never imports Prefect; ``flows/`` and ``tasks/`` wire it into a Prefect flow.
"""

__version__ = "0.1.0"
