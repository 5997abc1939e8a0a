"""Generated instances and state families: problems and days beyond the paper's one."""
