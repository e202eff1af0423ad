"""Purchase orders: supply the service can see, received into stock line by line."""
