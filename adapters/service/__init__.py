"""The sync as a service: ``syncledger run`` (one process) and ``syncledger worker`` (many)."""
