// One function per endpoint the app uses.
import { api, accessToken } from './client';
import type {
  AuditEvent,
  AuditPage,
  BidPlaced,
  CompleteLogin,
  CurrencyInfo,
  DisableTotp,
  Identity,
  Item,
  ItemEdit,
  ItemPage,
  ItemSort,
  ItemStatus,
  Ledger,
  LinkTicket,
  LoginRequest,
  NewItem,
  NotificationPage,
  OwnBid,
  OwnBidPage,
  PasswordPolicy,
  Photo,
  Poison,
  Provider,
  RecoveryCodes,
  RegisterRequest,
  RevealedBid,
  RevealedBidPage,
  Ticket,
  TokenResponse,
  TotpEnrolment,
  TotpStatus,
  UpdateMe,
  User,
  UserPage,
} from './types';

export async function passwordPolicy() {
  return (await api.get<PasswordPolicy>('/auth/policy')).data;
}

export async function register(body: RegisterRequest) {
  return (await api.post<User>('/auth/register', body)).data;
}

export async function verifyEmail(token: string) {
  return (await api.post<User>('/auth/verify-email', { token })).data;
}

export async function resendVerification(email: string) {
  await api.post('/auth/resend-verification', { email });
}

export async function login(body: LoginRequest) {
  const tokens = (await api.post<TokenResponse>('/auth/login', body)).data;
  accessToken.set(tokens.access_token);
  return tokens;
}

/** Completes a login that answered `mfa_required`. */
export async function completeLogin(body: CompleteLogin) {
  const tokens = (await api.post<TokenResponse>('/auth/mfa', body)).data;
  accessToken.set(tokens.access_token);
  return tokens;
}

export async function totpStatus() {
  return (await api.get<TotpStatus>('/auth/mfa/totp')).data;
}

export async function beginTotp(password: string) {
  return (await api.post<TotpEnrolment>('/auth/mfa/totp', { password })).data;
}

export async function confirmTotp(code: string) {
  return (await api.post<RecoveryCodes>('/auth/mfa/totp/confirm', { code })).data;
}

export async function disableTotp(proof: DisableTotp) {
  await api.delete('/auth/mfa/totp', { data: proof });
}

/** The OpenID providers to offer as "Sign in with …" buttons. */
export async function oidcProviders() {
  return (await api.get<Provider[]>('/auth/oidc/providers')).data;
}

/** Where the browser goes to sign in with `provider` (or link it, with a ticket). */
export function oidcStartUrl(provider: string, linkTicket?: string) {
  const start = `/api/v1/auth/oidc/${encodeURIComponent(provider)}/start`;
  return linkTicket ? `${start}?link=${encodeURIComponent(linkTicket)}` : start;
}

export async function linkTicket() {
  return (await api.post<LinkTicket>('/auth/oidc/link-ticket')).data;
}

export async function identities() {
  return (await api.get<Identity[]>('/users/me/identities')).data;
}

export async function unlinkIdentity(provider: string) {
  await api.delete(`/users/me/identities/${encodeURIComponent(provider)}`);
}

export async function logout() {
  try {
    await api.post('/auth/logout');
  } finally {
    accessToken.set(null);
  }
}

export async function forgotPassword(email: string) {
  await api.post('/auth/password/forgot', { email });
}

export async function resetPassword(token: string, new_password: string) {
  await api.post('/auth/password/reset', { token, new_password });
}

export async function changePassword(current_password: string, new_password: string) {
  const tokens = (
    await api.post<TokenResponse>('/auth/password/change', { current_password, new_password })
  ).data;
  accessToken.set(tokens.access_token);
}

export async function me() {
  return (await api.get<User>('/users/me')).data;
}

/** Changes your own account; the server answers with it as it now is. */
export async function updateMe(body: UpdateMe) {
  return (await api.patch<User>('/users/me', body)).data;
}

/** How amounts in currency `code` are written (its decimals), as the server reads them. */
export async function currency(code: string) {
  return (await api.get<CurrencyInfo>(`/currencies/${encodeURIComponent(code)}`)).data;
}

/**
 * A page of items. `sort` absent is the server's default: newest first, or
 * the best match first for a search (`q`: words in the title or description).
 */
export async function listItems(status: ItemStatus | undefined, cursor: string | null, sort?: ItemSort, q?: string) {
  const params: Record<string, string> = { limit: '20' };
  if (status) params.status = status;
  if (q) params.q = q;
  if (sort) params.sort = sort;
  if (cursor) params.cursor = cursor;
  return (await api.get<ItemPage>('/items', { params })).data;
}

export async function getItem(id: string) {
  return (await api.get<Item>(`/items/${encodeURIComponent(id)}`)).data;
}

export async function createItem(body: NewItem) {
  return (await api.post<Item>('/items', body)).data;
}

/**
 * Uploads a photo of an item (admin); `onProgress` hears the share of the
 * file sent so far (0–1).
 */
export async function uploadPhoto(itemId: string, file: Blob, onProgress?: (sent: number) => void) {
  const form = new FormData();
  form.append('photo', file);
  const answer = await api.post<Photo>(`/items/${encodeURIComponent(itemId)}/photos`, form, {
    onUploadProgress: (event) => {
      if (onProgress && event.total) onProgress(event.loaded / event.total);
    },
  });
  return answer.data;
}

/** Removes a photo (admin), while the item has no bids. */
export async function deletePhoto(itemId: string, photoId: string) {
  await api.delete(`/items/${encodeURIComponent(itemId)}/photos/${encodeURIComponent(photoId)}`);
}

/** Shows an item's photos in this order (exactly its photo ids). */
export async function reorderPhotos(itemId: string, ids: string[]) {
  await api.put(`/items/${encodeURIComponent(itemId)}/photos/order`, { ids });
}

/** Edits an item nobody has bid on yet (admin). */
export async function editItem(id: string, body: ItemEdit) {
  return (await api.patch<Item>(`/items/${encodeURIComponent(id)}`, body)).data;
}

/** The item's bid ledger head: a commitment to its sealed bids. */
export async function ledger(id: string) {
  return (await api.get<Ledger>(`/items/${encodeURIComponent(id)}/ledger`)).data;
}

/** Accounts, newest first, whose address contains `email` when given (admin). */
export async function listUsers(email: string, cursor: string | null) {
  const params: Record<string, string> = { limit: '20' };
  if (email.trim()) params.email = email.trim();
  if (cursor) params.cursor = cursor;
  return (await api.get<UserPage>('/users', { params })).data;
}

/** Changes an account's role or activation (admin); deactivating ends its sessions. */
export async function administerUser(id: string, change: { role?: User['role']; is_active?: boolean }) {
  return (await api.patch<User>(`/users/${encodeURIComponent(id)}`, change)).data;
}

/** Ends every session of your account, this one too. */
export async function logoutEverywhere() {
  await api.post('/auth/logout-all');
  accessToken.set(null);
}

export async function cancelItem(id: string) {
  return (await api.post<Item>(`/items/${encodeURIComponent(id)}/cancel`)).data;
}

export async function placeBid(id: string, amount: number, poison: Poison | null) {
  const body = poison ? { amount, poison } : { amount };
  return (await api.post<BidPlaced>(`/items/${encodeURIComponent(id)}/bid`, body)).data;
}

/** Your bid on an item, or `null` when you have none. */
export async function ownBid(id: string): Promise<OwnBid | null> {
  try {
    return (await api.get<OwnBid>(`/items/${encodeURIComponent(id)}/bid`)).data;
  } catch (error) {
    if ((error as { status?: number }).status === 404) return null;
    throw error;
  }
}

export async function myBids(cursor: string | null) {
  return (await api.get<OwnBidPage>('/me/bids', { params: cursor ? { cursor } : {} })).data;
}

/** Every revealed bid of a closed item, in `seq` order. */
export async function revealedBids(id: string) {
  const all: RevealedBid[] = [];
  let cursor: string | null = null;
  do {
    const params: Record<string, string> = { limit: '100' };
    if (cursor) params.cursor = cursor;
    const page: RevealedBidPage = (await api.get<RevealedBidPage>(`/items/${encodeURIComponent(id)}/bids`, { params })).data;
    all.push(...page.items);
    cursor = page.next_cursor ?? null;
  } while (cursor);
  return all;
}

/** A page of your stored notifications, newest first. */
export async function myNotifications(cursor: string | null) {
  const params: Record<string, string> = { limit: '20' };
  if (cursor) params.cursor = cursor;
  return (await api.get<NotificationPage>('/me/notifications', { params })).data;
}

/** Marks the notification `up_to_id` and every older one read. */
export async function markNotificationsRead(up_to_id: string) {
  await api.post('/me/notifications/read', { up_to_id });
}

export async function wsTicket() {
  return (await api.post<Ticket>('/ws-ticket')).data;
}

/** A page of the audit trail (admin), newest first, about one account or of one event. */
export async function auditTrail(filter: { user_id?: string; event?: AuditEvent }, cursor: string | null) {
  const params: Record<string, string> = { limit: '50' };
  if (filter.user_id) params.user_id = filter.user_id;
  if (filter.event) params.event = filter.event;
  if (cursor) params.cursor = cursor;
  return (await api.get<AuditPage>('/admin/audit', { params })).data;
}
