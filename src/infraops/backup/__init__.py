"""The backup role: verified, restorable backups of Nomad, Consul and PostgreSQL."""
