// Personal notifications over the WebSocket: a ticket from
// POST /ws-ticket opens it, a closed socket is reopened with a fresh ticket
// after a pause, and every message is shown as a toast and handed to
// whoever listens (the auction room updates its budget bar from them).
import { createContext, useCallback, useContext, useEffect, useRef, type ReactNode } from 'react';

import { wsTicket } from '../api/endpoints';
import type { Notification } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { useToast } from '../components/Toasts';
import { formatMoney } from '../money';

type Listener = (notification: Notification) => void;

const NotificationContext = createContext<(listener: Listener) => () => void>(() => () => {});

/** The toast text of a notification. */
export function describe(notification: Notification, currency = 'usd'): string {
  const money = (value: number | undefined) => (value === undefined ? '' : formatMoney(value, currency));
  const { data } = notification;
  switch (notification.type) {
    case 'outbid':
      return `You were outbid: the price is now ${money(data.current_price)}.`;
    case 'auto_raised':
      return `Your poison raised your bid to ${money(data.effective)}; ${money(data.remaining_budget)} of budget left.`;
    case 'exhausted':
      return `Your poison is spent: the price ${money(data.current_price)} is above your budget.`;
    case 'won':
      return `You won! You pay ${money(data.final_price)}.`;
    case 'lost':
      return `The auction closed at ${money(data.final_price)}; another bid won.`;
  }
}

/** A reconnect pause that grows to 10 s. */
export function backoff(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** attempt);
}

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const toast = useToast();
  const listeners = useRef(new Set<Listener>());

  useEffect(() => {
    if (status !== 'authenticated') return;
    let socket: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    let stopped = false;

    const connect = async () => {
      try {
        const { ticket } = await wsTicket();
        if (stopped) return;
        const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
        socket = new WebSocket(`${scheme}://${window.location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
        socket.onopen = () => {
          attempt = 0;
        };
        socket.onmessage = (message) => {
          try {
            const notification = JSON.parse(String(message.data)) as Notification;
            const kind = notification.type === 'won' || notification.type === 'auto_raised' ? 'good' : 'info';
            toast(describe(notification), kind);
            listeners.current.forEach((listener) => listener(notification));
          } catch {
            // Not a notification: ignore it.
          }
        };
        socket.onclose = () => {
          if (!stopped) timer = setTimeout(connect, backoff(attempt++));
        };
      } catch {
        if (!stopped) timer = setTimeout(connect, backoff(attempt++));
      }
    };
    void connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    };
  }, [status, toast]);

  const subscribe = useCallback((listener: Listener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);
  return <NotificationContext.Provider value={subscribe}>{children}</NotificationContext.Provider>;
}

/** Calls `listener` for every notification while the component is mounted. */
export function useNotifications(listener: Listener) {
  const subscribe = useContext(NotificationContext);
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => subscribe((notification) => latest.current(notification)), [subscribe]);
}
