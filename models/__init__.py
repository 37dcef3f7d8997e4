"""Model bundles shipped with composer (``models/default``), installed as ``composer.models``."""
