"""Documents Clerk prints for others: purchase orders for suppliers."""
