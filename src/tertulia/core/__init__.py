"""The domain: accounts, bots, models, knowledge, conversations. No HTTP in here."""
