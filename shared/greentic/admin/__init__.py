"""The admin API: operators manage sessions and deploy packs, over its own port."""
