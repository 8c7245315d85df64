"""``Microsoft.Resources/deployments``: the template language (pure: expressions.py,
functions/, template.py) and the deployment engine that runs it."""
