// Showing a short message: `useToast()(text, kind)`. ToastProvider
// (Toasts.tsx) shows them.
import { createContext, useContext } from 'react';

export type ToastKind = 'info' | 'good' | 'bad';

export const ToastContext = createContext<(text: string, kind?: ToastKind) => void>(() => {});

export function useToast() {
  return useContext(ToastContext);
}
