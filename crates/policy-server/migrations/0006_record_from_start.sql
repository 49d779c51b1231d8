-- A room (or a blueprint's rooms) recorded from its first call, and a
-- blueprint that does so.
ALTER TABLE rooms ADD COLUMN record INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blueprints ADD COLUMN record INTEGER NOT NULL DEFAULT 0;
INSERT INTO blueprints (name, description, max_participants, mute_on_entry, talkers_mixed, floor_policy, auto_create, record) VALUES
    ('town-hall', 'Starts with its moderator; participants join muted and are given the floor; recorded from its first call.', 0, 1, 2, 'moderator-granted', 0, 1);
