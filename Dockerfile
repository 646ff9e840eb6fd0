# The intents signing service with SoftHSM2 as its PKCS#11 module. docker-compose.yml runs it with
# PostgreSQL, an anvil chain and two replicas sharing one token; see README, "Operator guide".

# Dependencies, with the compilers pkcs11js (graphene-pk11's native binding) needs to build.
FROM node:20-bookworm-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

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
# DATA_DIR: the SoftHSM token, its configuration and PIN files live in /data/softhsm (mount a volume
# there to keep keys, and share it between replicas). A named volume mounted on /data/softhsm takes
# this folder's owner, so the unprivileged user can write to it.
RUN mkdir -p /data/softhsm && chown -R node:node /data
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 DATA_DIR=/data
USER node
EXPOSE 8080
# The server directly (not through npm), so that it receives SIGTERM itself.
CMD ["node", "--import", "tsx", "src/server.ts"]
