-- Floor control policy per room, whether a room starts without its
-- moderator (auto_create), and blueprints (room templates, RFC 6501's
-- conference blueprints) with the ones every server starts with.
ALTER TABLE rooms ADD COLUMN floor_policy TEXT NOT NULL DEFAULT 'none'
    CHECK (floor_policy IN ('none', 'moderator-granted', 'first-come'));
ALTER TABLE rooms ADD COLUMN auto_create INTEGER NOT NULL DEFAULT 1;

CREATE TABLE blueprints (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    locked INTEGER NOT NULL DEFAULT 0,
    max_participants INTEGER NOT NULL DEFAULT 0,
    watchers TEXT NOT NULL DEFAULT '',
    mute_on_entry INTEGER NOT NULL DEFAULT 0,
    talkers_mixed INTEGER NOT NULL DEFAULT 0,
    floor_policy TEXT NOT NULL DEFAULT 'none'
        CHECK (floor_policy IN ('none', 'moderator-granted', 'first-come')),
    auto_create INTEGER NOT NULL DEFAULT 1
);

INSERT INTO blueprints (name, description, max_participants, mute_on_entry, talkers_mixed, floor_policy, auto_create) VALUES
    ('meeting', 'Everyone talks: the three loudest are mixed.', 0, 0, 3, 'none', 1),
    ('lecture', 'Starts with its moderator; participants join muted and a moderator grants the floor to questions.', 0, 1, 2, 'moderator-granted', 0),
    ('panel', 'Small panel: the floor goes to the first who asks, one at a time.', 12, 0, 2, 'first-come', 1),
    ('huddle', 'Up to six people, everyone mixed.', 6, 0, 6, 'none', 1);
