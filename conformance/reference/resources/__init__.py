"""The API operations of the reference service, one module per resource group."""
