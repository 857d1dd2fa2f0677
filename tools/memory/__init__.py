"""The past-incidents source: similar incidents and runbooks from the memory (index/), for the
investigation and the model's ``similar_incidents`` tool. The memory itself lives in index/."""
