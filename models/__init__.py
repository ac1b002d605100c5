"""Pure nn.Modules, the checkpoint format and the registry of shipped models.

Nothing here imports training/, realtime/ or server/, chooses a device or downloads anything.
"""
