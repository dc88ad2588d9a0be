"""Database engine, sessions, declarative base and migration helpers."""
