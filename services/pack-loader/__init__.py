"""The pack-loader service process."""
