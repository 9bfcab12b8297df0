// The API's shapes (docs/spec/api.md), as the server sends them. Money is an integer
// of minor units, as on the server.

export type Role = 'user' | 'admin';

/** What a new password must meet (GET /auth/policy). */
export interface PasswordPolicy {
  password_min_length: number;
  password_max_length: number;
}

export interface User {
  id: string;
  email: string;
  display_name: string;
  role: Role;
  email_verified: boolean;
  created_at: string;
}

export type ItemStatus = 'open' | 'closed' | 'cancelled';

export interface Item {
  id: string;
  title: string;
  description: string;
  currency: string;
  base_price: number;
  min_increment: number;
  current_price: number | null;
  minimum_next_bid: number;
  bid_count: number;
  close_at: string;
  status: ItemStatus;
  created_at: string;
  final_price?: number | null;
  winner_id?: string | null;
}

export interface Poison {
  budget: number;
  step: number;
}

export type BidState = 'leading' | 'outbid' | 'exhausted' | 'won' | 'lost';

export interface OwnBid {
  id: string;
  item_id: string;
  amount: number;
  poison: Poison | null;
  state: BidState;
  effective: number;
  remaining_budget: number;
  created_at: string;
}

export interface RevealedBid {
  seq: number;
  bidder_id: string;
  amount: number;
  poison: Poison | null;
  state: BidState;
  effective: number;
  created_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
  has_more: boolean;
}

export interface BidPlaced {
  bid: OwnBid;
  item: Item;
}

export interface PriceEvent {
  item_id: string;
  current_price: number;
  minimum_next_bid: number;
  bid_count: number;
  at: string;
}

export interface ClosedEvent {
  item_id: string;
  final_price: number | null;
  has_winner: boolean;
  status: 'closed' | 'cancelled';
}

export type NotificationType = 'outbid' | 'auto_raised' | 'exhausted' | 'won' | 'lost';

export interface Notification {
  type: NotificationType;
  data: {
    item_id: string;
    current_price?: number;
    minimum_next_bid?: number;
    effective?: number;
    remaining_budget?: number;
    final_price?: number;
  };
  at: string;
}
