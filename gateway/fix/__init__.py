"""The QuickFIX adapter. QuickFIX types are used only inside this package."""
