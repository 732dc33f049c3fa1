"""Members: avatars (uploaded or generated), badges for milestones, following forums and tags,
and the Atom feeds of forums and tags.

The services here (avatars, badges, follows, feeds) belong to the Q&A layer; `routes` and `api`
to the routes layer. Badges are awarded from the domain events the layers below publish
(`subscribers`, connected at start-up by community.wiring), never by calls from below.
"""
