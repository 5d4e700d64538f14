"""`callsync db adopt`: take over the old Supabase system's database (app.adopt.service)."""
