"""The ClickHouse log table measured on chDB: codecs and the text access path."""
