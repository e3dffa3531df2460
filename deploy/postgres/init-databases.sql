-- One database and one login role per service, so each service owns its schema and
-- none can read another's tables (they share data only through Kafka events).
--
-- Run once by the postgres image on an empty data directory (mounted into
-- /docker-entrypoint-initdb.d by docker-compose.yml), as the superuser.
--
-- DEVELOPMENT-ONLY PASSWORDS. They are in this public file on purpose, for the local
-- compose stack. Never use them on a reachable server: in production each service's
-- credentials live in a secret store and reach the service as <SERVICE>_DATABASE_URL.

CREATE ROLE site_registry LOGIN PASSWORD 'site_registry_dev';
CREATE DATABASE site_registry OWNER site_registry ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE site_registry FROM PUBLIC;

CREATE ROLE campaigns LOGIN PASSWORD 'campaigns_dev';
CREATE DATABASE campaigns OWNER campaigns ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE campaigns FROM PUBLIC;

CREATE ROLE detection LOGIN PASSWORD 'detection_dev';
CREATE DATABASE detection OWNER detection ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE detection FROM PUBLIC;

CREATE ROLE funding LOGIN PASSWORD 'funding_dev';
CREATE DATABASE funding OWNER funding ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE funding FROM PUBLIC;
