// Wire shapes of /v1/webhooks.
import { z } from "zod";
import { DEFAULT_WEBHOOK_EVENT_TYPES, WEBHOOK_EVENT_TYPES } from "../../webhooks/events.js";
import { pageLimit } from "./common.js";

const webhookUrl = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      const u = new URL(v);
      // fetch refuses URLs with credentials; say so now rather than fail every delivery.
      return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "" && u.username === "" && u.password === "";
    } catch {
      return false;
    }
  }, "must be an http:// or https:// URL without user:password@");

export const CreateWebhookRequest = z.strictObject({
  url: webhookUrl,
  events: z
    .array(z.enum(WEBHOOK_EVENT_TYPES))
    .min(1)
    .max(WEBHOOK_EVENT_TYPES.length * 4)
    .transform((l) => [...new Set(l)])
    // The transaction events; operator alerts (signing_key.nonce_gap_alert) and signatures are subscribed to by name.
    .default([...DEFAULT_WEBHOOK_EVENT_TYPES]),
  description: z.string().max(2000).optional(),
});

export const WebhookParams = z.object({ id: z.string().max(100) });
export const DeliveriesQuery = z.object({
  status: z.enum(["pending", "delivered", "failed"]).optional(),
  limit: pageLimit,
});
