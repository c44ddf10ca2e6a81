"""Local servers speaking each vendor's wire protocol over one seeded store.

`store` generates the shop (catalog, customers, stock, orders); each vendor module
renders it in that vendor's shapes; `faults` and `server` are shared by all of them.
"""
